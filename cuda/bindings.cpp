// Radiant kernels: the torch extension module. Each kernel family registers itself (see bind/registry.h);
// its binding checks tensors and dispatches to the CPU loop (cpu/) or the CUDA launcher (gpu/) by device.
#include "bind/registry.h"

namespace radiant {
std::vector<RegisterFn>& binding_registry() {
    static std::vector<RegisterFn> fns;
    return fns;
}
}  // namespace radiant

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "Radiant kernels (BVH, occupancy grid, sphere tracing, BSDFs)";
#ifdef RADIANT_WITH_CUDA
    m.attr("with_cuda") = true;
#else
    m.attr("with_cuda") = false;
#endif
    for (auto fn : radiant::binding_registry()) fn(m);
}
