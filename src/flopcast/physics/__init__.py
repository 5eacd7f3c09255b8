"""The shared cost model: counting (params, FLOPs, bytes) and timing (compute, comm, pipeline).

No workload knowledge lives here; every function takes numbers or NumPy arrays and broadcasts.
"""
