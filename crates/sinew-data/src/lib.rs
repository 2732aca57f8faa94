//! sinew-data (under construction).
