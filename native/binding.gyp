{
  "targets": [
    {
      "target_name": "bpfredir",
      "sources": ["<!@(ls -1 *.cc)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "../bpf"],
      "libraries": ["-lbpf", "-lelf", "-lz"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    }
  ]
}
