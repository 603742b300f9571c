//! The one shared Kubernetes client (being written).
