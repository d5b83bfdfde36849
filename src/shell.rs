//! Shell command analysis for container commands and Dockerfile RUN/CMD (placeholder, being written).
