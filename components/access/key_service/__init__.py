"""The key service program (server.py) and its page, shipped to the cluster as files."""
