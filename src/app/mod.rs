//! The GitHub App side of kpath: webhooks in (signature-checked, de-duplicated, routed to jobs), a
//! queue keyed by pull request, and `/kpath` commands. Posting to GitHub builds on this.

pub mod events;
pub mod queue;
pub mod webhook;
