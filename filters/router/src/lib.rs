//! aigw router filter: the downstream HTTP filter. It answers `/v1/models`,
//! validates the request, reads `model` from the body and routes the request
//! (by setting `x-aigw-route`, which makes Envoy re-match its route table).
//! On the way back it reads token usage from the response, and removes the
//! usage chunk the gateway asked for when the client did not.

mod http;
mod root;

proxy_wasm::main! {{
    aigw_wasm::init();
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::RouterRoot::default())
    });
}}
