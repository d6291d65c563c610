"""How the project runs on a machine: environment set-up and the local process runner."""
