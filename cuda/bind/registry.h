// Radiant kernels: self-registration of each kernel family's Python bindings, and shared tensor checks.
#pragma once
#include <torch/extension.h>
#include <string>
#include <vector>

namespace radiant {

using RegisterFn = void (*)(pybind11::module_&);
std::vector<RegisterFn>& binding_registry();

// A file-scope `static Registrar r(&register_xxx);` adds a family's functions to the module.
struct Registrar {
    explicit Registrar(RegisterFn fn) { binding_registry().push_back(fn); }
};

// Raise ValueError (never crash) on a tensor of the wrong dtype, rank, trailing size or device.
// last_dim < 0 skips the trailing-size check; ndim < 0 skips the rank check.
inline void check_tensor(const at::Tensor& t, const char* name, at::ScalarType dtype, int64_t ndim,
                         int64_t last_dim = -1) {
    TORCH_CHECK_VALUE(t.defined(), name, ": expected a tensor, got None");
    TORCH_CHECK_VALUE(t.scalar_type() == dtype, name, ": expected dtype ", c10::toString(dtype), ", got ",
                      c10::toString(t.scalar_type()));
    TORCH_CHECK_VALUE(ndim < 0 || t.dim() == ndim, name, ": expected ", ndim, " dimensions, got shape ", t.sizes());
    TORCH_CHECK_VALUE(last_dim < 0 || (t.dim() > 0 && t.size(-1) == last_dim), name, ": expected last dimension ",
                      last_dim, ", got shape ", t.sizes());
    TORCH_CHECK_VALUE(t.is_cpu() || t.is_cuda(), name, ": expected a CPU or CUDA tensor, got device ", t.device());
}

inline void check_same_device(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn) {
    TORCH_CHECK_VALUE(a.device() == b.device(), bn, ": expected the same device as ", an, " (", a.device(),
                      "), got ", b.device());
}

inline void check_rows(const at::Tensor& t, const char* name, int64_t rows) {
    TORCH_CHECK_VALUE(t.size(0) == rows, name, ": expected ", rows, " rows, got shape ", t.sizes());
}

}  // namespace radiant
