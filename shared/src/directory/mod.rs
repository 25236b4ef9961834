//! Churches and their admins (the directory issue builds members, branches
//! and groups on top).

pub mod admins;
pub mod churches;
