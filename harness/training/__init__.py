"""The one training loop (`train`), the runs built on it (`runs`: work directories, resumable
pre-training, saving), devices and data-parallel processes, and dev-set model selection."""
