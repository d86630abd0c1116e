"""Local stand-ins for external services (real servers on 127.0.0.1), shared by the test levels."""
