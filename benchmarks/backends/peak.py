"""The matmul peak on this backend and device: square matmuls timed among the steps they judge.

Each probe returns a callable that runs CALLS dependent n x n products and waits for the
device; figures.matmul_flops(n, CALLS) over its median time is the peak.
"""

CALLS = 3


def probe_side(device: str, quick: bool) -> int:
    return 512 if quick else (2048 if device == "cpu" else 8192)


def matmul_probe(backend: str, device: str, dtype: str, n: int):
    """A callable timing CALLS chained n x n matmuls in `dtype` on `backend`/`device`."""
    return {"jax": _jax_probe, "torch": _torch_probe, "tensorflow": _tensorflow_probe}[backend](device, dtype, n)


def _jax_probe(device, dtype, n):
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32).astype(dtype)

    @jax.jit
    def chained(a, b):
        for _ in range(CALLS):
            a = a + jnp.matmul(a, b)[0, 0]  # a dependency, so the products are not merged
        return a[0, 0]

    return lambda: chained(a, b).block_until_ready()


def _torch_probe(device, dtype, n):
    import torch

    where = torch.device("cuda" if device == "gpu" else "cpu")
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(where, getattr(torch, dtype))
    b = torch.randn(n, n, generator=generator).to(where, getattr(torch, dtype))

    def chained():
        x = a
        with torch.no_grad():
            for _ in range(CALLS):
                x = x + torch.matmul(x, b)[0, 0]
        return float(x[0, 0])  # waits for the device

    return chained


def _tensorflow_probe(device, dtype, n):
    import tensorflow as tf

    name = "/GPU:0" if device == "gpu" else "/CPU:0"
    with tf.device(name):
        a = tf.cast(tf.random.normal([n, n], seed=0), dtype)
        b = tf.cast(tf.random.normal([n, n], seed=1), dtype)

    @tf.function
    def chained(a, b):
        for _ in range(CALLS):
            a = a + tf.matmul(a, b)[0, 0]
        return a[0, 0]

    def call():
        with tf.device(name):
            return chained(a, b).numpy()

    return call
