//! One file per table: the row type, the insert type, and plain query functions taking a
//! connection.

pub mod audit;
pub mod session_row;
pub mod social_account;
pub mod user;
