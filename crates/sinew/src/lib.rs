//! sinew (under construction).
