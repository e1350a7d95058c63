{
  # One addon, vrep.node. zstd is linked from zstd-napi's gyp target and
  # simdjson is compiled from the simdjson package's amalgamation, so no
  # third-party source lives in this repository.
  "variables": {
    "zstd_dir": "<!(node -p \"require('path').dirname(require.resolve('zstd-napi/package.json'))\")",
    # gyp's make generator needs a relative path for a source file.
    "simdjson_dir": "<!(node -p \"require('path').relative('.', require('path').dirname(require.resolve('simdjson/package.json')))\")/simdjson/src"
  },
  "target_defaults": {
    "default_configuration": "Release",
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++0x"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O3"],
    "cflags": ["-O3"],
    "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
    }
  },
  "targets": [
    {
      # Kernels that need ISA flags live in their own static libraries so the
      # rest of the addon stays baseline; the dispatcher picks at run time.
      "target_name": "vrep_simd_avx2",
      "type": "static_library",
      "sources": ["native/distance_avx2.cc"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-mavx2", "-mfma"] }]
      ]
    },
    {
      "target_name": "vrep_simd_avx512",
      "type": "static_library",
      "sources": ["native/distance_avx512.cc"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"] }]
      ]
    },
    {
      "target_name": "vrep_simdjson",
      "type": "static_library",
      "sources": ["<(simdjson_dir)/simdjson.cpp"],
      "cflags_cc": ["-Wno-unused-function"],
      "direct_dependent_settings": { "include_dirs": ["<(simdjson_dir)"] }
    },
    {
      "target_name": "vrep",
      "dependencies": [
        "<(zstd_dir)/deps/zstd.gyp:libzstd",
        "vrep_simd_avx2",
        "vrep_simd_avx512",
        "vrep_simdjson"
      ],
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/ring_log.cc",
        "native/distance.cc",
        "native/distance_scalar.cc",
        "native/distance_neon.cc",
        "native/batch_codec.cc",
        "native/shuffle.cc",
        "native/crc32c.cc",
        "native/json_points.cc",
        "native/json_text.cc",
        "native/prefault.cc",
        "native/external_memory.cc",
        "native/copy_floats.cc",
        "native/id_index.cc",
        "native/json_objects.cc"
      ],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
