//! Who is calling: passwords, tokens, sessions (refresh-token families),
//! CSRF and login throttling.

pub mod caller;
pub mod cookies;
pub mod csrf;
pub mod login;
pub mod model;
pub mod password_reset;
pub mod passwords;
pub mod rate;
pub mod sessions;
pub mod throttle;
pub mod tokens;

pub use caller::{Caller, authenticate};
pub use tokens::{Role, TokenSigner};
