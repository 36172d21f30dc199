//! Tape-based reverse-mode automatic differentiation (see the crate README).
