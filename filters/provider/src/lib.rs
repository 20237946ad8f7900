//! aigw provider filter: the upstream HTTP filter of one provider's cluster,
//! run once per attempt. It sends the request to the provider the way the
//! provider expects (path, host, key, model name, usage option) and turns the
//! provider's errors into the client's error shape.

mod http;
mod root;

proxy_wasm::main! {{
    aigw_wasm::init();
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::ProviderRoot::default())
    });
}}
