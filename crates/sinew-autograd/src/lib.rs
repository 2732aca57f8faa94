//! sinew-autograd (under construction).
