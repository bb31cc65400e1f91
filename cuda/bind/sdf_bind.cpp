// Radiant kernels: Python bindings of the dense-SDF family (trilinear query, sphere tracing), dispatched by device.
#include <cmath>

#include "../cpu/sdf_cpu.h"
#include "registry.h"
#ifdef RADIANT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "../gpu/sdf_gpu.h"
#endif

namespace radiant {
namespace {

// values float32 (X, Y, Z), each >= 2; box = lo (3), hi (3), inv_spacing (3) as float32 numbers.
DenseSDFView make_view(const at::Tensor& values, const std::vector<double>& box) {
    check_tensor(values, "values", at::kFloat, 3);
    for (int a = 0; a < 3; ++a)
        TORCH_CHECK_VALUE(values.size(a) >= 2 && values.size(a) <= (1 << 20),
                          "values: expected 2 to 2^20 samples per axis, got shape ", values.sizes());
    TORCH_CHECK_VALUE(values.is_contiguous(), "values: expected a contiguous tensor");
    TORCH_CHECK_VALUE(box.size() == 9, "box: expected 9 numbers (lo, hi, inv_spacing), got ", box.size());
    DenseSDFView s;
    s.values = values.data_ptr<float>();
    for (int a = 0; a < 3; ++a) {
        s.res[a] = (int32_t)values.size(a);
        s.lo[a] = (float)box[a];
        s.hi[a] = (float)box[3 + a];
        s.inv_spacing[a] = (float)box[6 + a];
        TORCH_CHECK_VALUE(std::isfinite(s.lo[a]) && std::isfinite(s.hi[a]) && s.lo[a] < s.hi[a],
                          "box: expected finite lo < hi");
        TORCH_CHECK_VALUE(std::isfinite(s.inv_spacing[a]) && s.inv_spacing[a] > 0.f,
                          "box: expected finite inv_spacing > 0");
    }
    return s;
}

at::Tensor sdf_query(at::Tensor values, std::vector<double> box, at::Tensor points) {
    DenseSDFView s = make_view(values, box);
    check_tensor(points, "points", at::kFloat, 2, 3);
    check_same_device(values, "values", points, "points");
    TORCH_CHECK_VALUE(points.is_contiguous(), "points: expected a contiguous tensor");
    int64_t n = points.size(0);
    at::Tensor out = at::empty({n}, points.options());
    if (points.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        sdf_query_cuda(s, points.data_ptr<float>(), n, out.data_ptr<float>(), at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "points: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        sdf_query_cpu(s, points.data_ptr<float>(), n, out.data_ptr<float>());
    }
    return out;
}

// Returns (t float32 (N,) inf on a miss, hit bool (N,), steps int32 (N,)).
std::vector<at::Tensor> sdf_trace(at::Tensor values, std::vector<double> box, at::Tensor origins,
                                  at::Tensor directions, at::Tensor near, at::Tensor far, int64_t max_steps,
                                  double eps, double step_scale) {
    DenseSDFView s = make_view(values, box);
    check_tensor(origins, "origins", at::kFloat, 2, 3);
    check_tensor(directions, "directions", at::kFloat, 2, 3);
    check_tensor(near, "near", at::kFloat, 1);
    check_tensor(far, "far", at::kFloat, 1);
    int64_t n = origins.size(0);
    check_rows(directions, "directions", n);
    check_rows(near, "near", n);
    check_rows(far, "far", n);
    for (auto [t, name] : {std::pair{&values, "values"}, {&directions, "directions"}, {&near, "near"}, {&far, "far"}})
        check_same_device(origins, "origins", *t, name);
    for (auto [t, name] : {std::pair{&origins, "origins"}, {&directions, "directions"}, {&near, "near"}, {&far, "far"}})
        TORCH_CHECK_VALUE(t->is_contiguous(), name, ": expected a contiguous tensor");
    TORCH_CHECK_VALUE(max_steps >= 1 && max_steps <= INT32_MAX, "max_steps: expected an int >= 1, got ", max_steps);
    TORCH_CHECK_VALUE(std::isfinite(eps) && eps >= 0, "eps: expected a finite number >= 0, got ", eps);
    TORCH_CHECK_VALUE(std::isfinite(step_scale) && (float)step_scale > 0.f,
                      "step_scale: expected a finite number > 0, got ", step_scale);
    at::Tensor t = at::empty({n}, origins.options());
    at::Tensor hit = at::empty({n}, origins.options().dtype(at::kBool));
    at::Tensor steps = at::empty({n}, origins.options().dtype(at::kInt));
    if (origins.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        sdf_trace_cuda(s, origins.data_ptr<float>(), directions.data_ptr<float>(), near.data_ptr<float>(),
                       far.data_ptr<float>(), n, (int32_t)max_steps, (float)eps, (float)step_scale,
                       t.data_ptr<float>(), hit.data_ptr<bool>(), steps.data_ptr<int32_t>(),
                       at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "origins: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        sdf_trace_cpu(s, origins.data_ptr<float>(), directions.data_ptr<float>(), near.data_ptr<float>(),
                      far.data_ptr<float>(), n, (int32_t)max_steps, (float)eps, (float)step_scale,
                      t.data_ptr<float>(), hit.data_ptr<bool>(), steps.data_ptr<int32_t>());
    }
    return {t, hit, steps};
}

void register_sdf(pybind11::module_& m) {
    m.def("sdf_query", &sdf_query, "Trilinear interpolation of a dense SDF grid at points", pybind11::arg("values"),
          pybind11::arg("box"), pybind11::arg("points"));
    m.def("sdf_trace", &sdf_trace, "Sphere tracing of a dense SDF grid", pybind11::arg("values"), pybind11::arg("box"),
          pybind11::arg("origins"), pybind11::arg("directions"), pybind11::arg("near"), pybind11::arg("far"),
          pybind11::arg("max_steps"), pybind11::arg("eps"), pybind11::arg("step_scale"));
}

static Registrar registrar(&register_sdf);

}  // namespace
}  // namespace radiant
