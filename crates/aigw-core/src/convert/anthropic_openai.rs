//! See `convert/mod.rs`. (In progress.)
