//! Detection of sensitive names and credential-shaped values (placeholder, being written).
