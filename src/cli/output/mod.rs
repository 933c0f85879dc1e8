//! Where a pull's items go: the committed output, its checkpoint and the files kept
//! beside it, and the export layout.

pub mod checkpoint;
pub mod commit;
pub mod export;
pub mod paths;
pub mod spool;
pub mod stored;
