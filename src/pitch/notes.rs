//! Notes from a sung pitch curve (placeholder, filled in below).
