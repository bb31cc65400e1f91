"""BSDF configurations shared by the BSDF tests: (id, Mitsuba plugin name, properties)."""

CASES = [
    ("diffuse", "diffuse", {"reflectance": [0.2, 0.5, 0.8]}),
    ("diffuse-twosided", "diffuse", {"reflectance": 0.7, "twosided": True}),
    ("conductor-mirror", "conductor", {}),
    ("conductor-au", "conductor", {"eta": [0.143, 0.374, 1.442], "k": [3.983, 2.385, 1.603]}),
    ("conductor-material-cu", "conductor", {"material": "Cu"}),
    ("roughconductor-material-al", "roughconductor", {"material": "Al", "distribution": "ggx", "alpha": 0.15}),
    ("roughconductor-beckmann", "roughconductor", {"alpha": 0.3, "eta": [0.2, 0.9, 1.1], "k": [3.9, 2.4, 1.6]}),
    ("roughconductor-ggx", "roughconductor", {"distribution": "ggx", "alpha": 0.2}),
    ("roughconductor-ggx-aniso", "roughconductor",
     {"distribution": "ggx", "alpha_u": 0.05, "alpha_v": 0.4, "eta": 1.5, "k": 2.0}),
    ("roughconductor-beckmann-aniso-allnormals", "roughconductor",
     {"alpha_u": 0.4, "alpha_v": 0.1, "sample_visible": False}),
    ("roughconductor-ggx-allnormals", "roughconductor", {"distribution": "ggx", "alpha": 0.5, "sample_visible": False}),
    ("dielectric", "dielectric", {}),
    ("thindielectric", "thindielectric", {"int_ior": 1.7}),
    ("roughdielectric-beckmann", "roughdielectric", {"alpha": 0.25}),
    ("roughdielectric-ggx", "roughdielectric", {"distribution": "ggx", "alpha": 0.4, "int_ior": "water"}),
    ("roughdielectric-ggx-aniso", "roughdielectric",
     {"distribution": "ggx", "alpha_u": 0.1, "alpha_v": 0.5, "int_ior": 1.8}),
    ("roughdielectric-ggx-allnormals", "roughdielectric",
     {"distribution": "ggx", "alpha": 0.3, "sample_visible": False}),
    ("plastic", "plastic", {"diffuse_reflectance": [0.1, 0.4, 0.7]}),
    ("plastic-nonlinear", "plastic", {"diffuse_reflectance": [0.9, 0.5, 0.2], "nonlinear": True, "int_ior": 1.9}),
    ("roughplastic-beckmann", "roughplastic", {"alpha": 0.2, "diffuse_reflectance": [0.3, 0.6, 0.2]}),
    ("roughplastic-ggx-nonlinear", "roughplastic",
     {"distribution": "ggx", "alpha": 0.35, "nonlinear": True, "diffuse_reflectance": 0.8}),
]

CASE_IDS = [c[0] for c in CASES]
