//! sinew-cuda (under construction).
