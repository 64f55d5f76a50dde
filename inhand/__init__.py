"""The `inhand` command: one entry point that dispatches to sim, policies, vision and ros_nodes."""
