"""Integration tests: the real boto3 clients against moto, the stack built from template.yaml."""
