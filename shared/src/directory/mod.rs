//! Churches and their admins (the directory issue builds members, branches
//! and groups on top).

pub mod admins;
pub mod branches;
pub mod churches;
pub mod cleanup;
pub mod dashboard;
pub mod error;
pub mod groups;
pub mod import;
pub mod members;
pub mod model;
pub mod plans;
pub mod profile;
