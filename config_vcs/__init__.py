"""Configuration history: watch directories, commit changes with dulwich, push to remotes."""
