{
  "targets": [
    {
      "target_name": "coffer_sparse",
      "sources": ["native/sparse.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
