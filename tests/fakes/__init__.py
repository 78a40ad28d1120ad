"""Local stand-ins for external systems, speaking HTTP on 127.0.0.1 (ephemeral ports)."""
