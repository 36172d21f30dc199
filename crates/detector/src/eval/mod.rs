//! Evaluation: the one-class protocol of PAPER.md, its splits, the AUROC, evaluation at
//! training budgets, and merging classes run as separate jobs.

pub mod auroc;
pub mod budget;
pub mod merge;
pub mod protocol;
pub mod split;
pub mod threshold;

pub use auroc::auroc;
pub use protocol::{run_protocol, Aurocs, ClassResult, DatasetKind, ProtocolResult};
