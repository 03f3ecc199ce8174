//! Python bindings for headjack (filled in by the Python work).
