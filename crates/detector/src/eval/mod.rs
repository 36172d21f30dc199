//! Evaluation: the one-class protocol of PAPER.md, its splits, the AUROC, evaluation at
//! training budgets, merging classes run as separate jobs, and the spread over seeds.

pub mod auroc;
pub mod budget;
pub mod merge;
pub mod protocol;
pub mod seeds;
pub mod split;
pub mod threshold;

pub use auroc::auroc;
pub use protocol::{run_protocol, Aurocs, ClassResult, DatasetKind, ProtocolResult};
