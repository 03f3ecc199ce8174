//! C ABI for headjack (filled in by the C ABI work).
