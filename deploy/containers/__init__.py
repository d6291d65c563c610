"""Containers: the plan shared by the Docker launcher, the compose file and the manifests."""
