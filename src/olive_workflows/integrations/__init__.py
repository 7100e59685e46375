"""Services outside this machine: Azure ML."""
