// Radiant kernels: Python bindings of the occupancy-grid family (two-pass packed ray marching), dispatched by device.
#include <cmath>

#include "../cpu/grid_cpu.h"
#include "registry.h"
#ifdef RADIANT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "../gpu/grid_gpu.h"
#endif

namespace radiant {
namespace {

// Returns (ray_indices int64 (S,), t_starts float32 (S,), t_ends float32 (S,), packed_info int64 (N,2) = start, count).
std::vector<at::Tensor> grid_march(at::Tensor binary, at::Tensor level_lo, at::Tensor level_hi, at::Tensor level_scale,
                                   at::Tensor origins, at::Tensor directions, at::Tensor near, at::Tensor far,
                                   double step, int64_t max_samples) {
    check_tensor(binary, "binary", at::kByte, 4);
    check_tensor(level_lo, "level_lo", at::kFloat, 2, 3);
    check_tensor(level_hi, "level_hi", at::kFloat, 2, 3);
    check_tensor(level_scale, "level_scale", at::kFloat, 2, 3);
    check_tensor(origins, "origins", at::kFloat, 2, 3);
    check_tensor(directions, "directions", at::kFloat, 2, 3);
    check_tensor(near, "near", at::kFloat, 1);
    check_tensor(far, "far", at::kFloat, 1);
    int64_t levels = binary.size(0);
    TORCH_CHECK_VALUE(levels >= 1 && levels <= kGridMaxLevels, "binary: expected 1 to ", kGridMaxLevels,
                      " levels, got shape ", binary.sizes());
    for (int a = 1; a < 4; ++a)
        TORCH_CHECK_VALUE(binary.size(a) >= 1 && binary.size(a) <= (1 << 20), "binary: expected 1 to 2^20 cells per axis, got shape ",
                          binary.sizes());
    check_rows(level_lo, "level_lo", levels);
    check_rows(level_hi, "level_hi", levels);
    check_rows(level_scale, "level_scale", levels);
    int64_t n = origins.size(0);
    check_rows(directions, "directions", n);
    check_rows(near, "near", n);
    check_rows(far, "far", n);
    for (auto [t, name] : {std::pair{&binary, "binary"}, {&level_lo, "level_lo"}, {&level_hi, "level_hi"},
                           {&level_scale, "level_scale"}, {&directions, "directions"}, {&near, "near"}, {&far, "far"}}) {
        check_same_device(origins, "origins", *t, name);
        TORCH_CHECK_VALUE(t->is_contiguous(), name, ": expected a contiguous tensor");
    }
    TORCH_CHECK_VALUE(origins.is_contiguous(), "origins: expected a contiguous tensor");
    TORCH_CHECK_VALUE(level_lo.isfinite().all().item<bool>() && level_hi.isfinite().all().item<bool>() &&
                          level_lo.le(level_hi).all().item<bool>(),
                      "level_lo, level_hi: expected finite boxes with lo <= hi");
    TORCH_CHECK_VALUE(level_scale.isfinite().all().item<bool>() && level_scale.gt(0).all().item<bool>(),
                      "level_scale: expected finite values > 0");
    TORCH_CHECK_VALUE(std::isfinite(step) && (float)step > 0.f, "step_size: expected a finite number > 0, got ", step);
    TORCH_CHECK_VALUE(max_samples >= 1, "max_samples: expected >= 1, got ", max_samples);

    GridView g;
    g.binary = binary.data_ptr<uint8_t>();
    g.level_lo = level_lo.data_ptr<float>();
    g.level_hi = level_hi.data_ptr<float>();
    g.level_scale = level_scale.data_ptr<float>();
    g.levels = (int32_t)levels;
    for (int a = 0; a < 3; ++a) g.res[a] = (int32_t)binary.size(a + 1);

    auto i64 = origins.options().dtype(at::kLong);
    at::Tensor counts = at::empty({n}, i64);
    const float *o = origins.data_ptr<float>(), *d = directions.data_ptr<float>();
    const float *tn = near.data_ptr<float>(), *tf = far.data_ptr<float>();
    float fstep = (float)step;
    bool cuda = origins.is_cuda();
#ifndef RADIANT_WITH_CUDA
    TORCH_CHECK_VALUE(!cuda, "origins: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    if (cuda) {
#ifdef RADIANT_WITH_CUDA
        grid_march_count_cuda(g, o, d, tn, tf, n, fstep, max_samples, counts.data_ptr<int64_t>(),
                              at::cuda::getCurrentCUDAStream());
#endif
    } else {
        grid_march_count_cpu(g, o, d, tn, tf, n, fstep, max_samples, counts.data_ptr<int64_t>());
    }
    at::Tensor ends = at::cumsum(counts, 0);
    at::Tensor offsets = ends - counts;
    int64_t total = n > 0 ? ends[n - 1].item<int64_t>() : 0;
    at::Tensor ray_indices = at::empty({total}, i64);
    at::Tensor t_starts = at::empty({total}, origins.options());
    at::Tensor t_ends = at::empty({total}, origins.options());
    if (cuda) {
#ifdef RADIANT_WITH_CUDA
        grid_march_fill_cuda(g, o, d, tn, tf, n, fstep, max_samples, offsets.data_ptr<int64_t>(),
                             ray_indices.data_ptr<int64_t>(), t_starts.data_ptr<float>(), t_ends.data_ptr<float>(),
                             at::cuda::getCurrentCUDAStream());
#endif
    } else {
        grid_march_fill_cpu(g, o, d, tn, tf, n, fstep, max_samples, offsets.data_ptr<int64_t>(),
                            ray_indices.data_ptr<int64_t>(), t_starts.data_ptr<float>(), t_ends.data_ptr<float>());
    }
    at::Tensor packed_info = at::stack({offsets, counts}, 1);
    return {ray_indices, t_starts, t_ends, packed_info};
}

void register_grid(pybind11::module_& m) {
    m.def("grid_march", &grid_march, "Packed ray marching through a multi-level occupancy grid (two passes)",
          pybind11::arg("binary"), pybind11::arg("level_lo"), pybind11::arg("level_hi"), pybind11::arg("level_scale"),
          pybind11::arg("origins"), pybind11::arg("directions"), pybind11::arg("near"), pybind11::arg("far"),
          pybind11::arg("step"), pybind11::arg("max_samples"));
}

static Registrar registrar(&register_grid);

}  // namespace
}  // namespace radiant
