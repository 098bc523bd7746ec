//! Test tools for Cairn.
