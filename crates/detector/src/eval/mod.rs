//! Evaluation: the one-class protocol of PAPER.md, its splits, and the AUROC.

pub mod auroc;
pub mod protocol;
pub mod split;
pub mod threshold;

pub use auroc::auroc;
pub use protocol::{run_protocol, Aurocs, ClassResult, DatasetKind, ProtocolResult};
