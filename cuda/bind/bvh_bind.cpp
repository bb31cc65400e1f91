// Radiant kernels: Python bindings of the BVH family (build, closest hit, any hit), dispatched by device.
#include "../cpu/bvh_cpu.h"
#include "registry.h"
#ifdef RADIANT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "../gpu/bvh_gpu.h"
#endif

namespace radiant {
namespace {

// Returns (nodes int32 (N,32) bit-packed BVHNode4, prim_data float32 (P,9), prim_ids int32 (P,)), all on the CPU.
std::vector<at::Tensor> bvh_build(at::Tensor vertices, at::Tensor faces, at::Tensor spheres, int64_t max_leaf_size) {
    check_tensor(vertices, "vertices", at::kFloat, 2, 3);
    check_tensor(faces, "faces", at::kInt, 2, 3);
    check_tensor(spheres, "spheres", at::kFloat, 2, 4);
    vertices = vertices.to(at::kCPU).contiguous();
    faces = faces.to(at::kCPU).contiguous();
    spheres = spheres.to(at::kCPU).contiguous();
    TORCH_CHECK_VALUE(vertices.numel() == 0 || vertices.isfinite().all().item<bool>(),
                      "vertices: expected finite values, found NaN or inf");
    TORCH_CHECK_VALUE(spheres.numel() == 0 || spheres.isfinite().all().item<bool>(),
                      "spheres: expected finite values, found NaN or inf");
    if (faces.numel() > 0) {
        int64_t lo = faces.min().item<int64_t>(), hi = faces.max().item<int64_t>();
        TORCH_CHECK_VALUE(lo >= 0 && hi < vertices.size(0), "faces: expected vertex indices in [0, ", vertices.size(0),
                          "), got [", lo, ", ", hi, "]");
    }
    TORCH_CHECK_VALUE(faces.size(0) + spheres.size(0) < (int64_t)INT32_MAX, "too many primitives for int32 ids");
    BVHBuildResult r = bvh_build_cpu(vertices.data_ptr<float>(), vertices.size(0), faces.data_ptr<int32_t>(),
                                     faces.size(0), spheres.data_ptr<float>(), spheres.size(0), (int)max_leaf_size);
    auto i32 = at::TensorOptions().dtype(at::kInt);
    auto f32 = at::TensorOptions().dtype(at::kFloat);
    at::Tensor nodes = at::empty({(int64_t)r.nodes.size(), kNodeInts}, i32);
    std::memcpy(nodes.data_ptr<int32_t>(), r.nodes.data(), r.nodes.size() * sizeof(BVHNode4));
    at::Tensor prims = at::empty({(int64_t)r.prim_ids.size(), kPrimStride}, f32);
    std::memcpy(prims.data_ptr<float>(), r.prim_data.data(), r.prim_data.size() * sizeof(float));
    at::Tensor ids = at::empty({(int64_t)r.prim_ids.size()}, i32);
    std::memcpy(ids.data_ptr<int32_t>(), r.prim_ids.data(), r.prim_ids.size() * sizeof(int32_t));
    return {nodes, prims, ids};
}

void check_bvh_args(const at::Tensor& nodes, const at::Tensor& prims, const at::Tensor& prim_ids,
                    const at::Tensor& origins, const at::Tensor& directions, const at::Tensor& tmin,
                    const at::Tensor& tmax) {
    check_tensor(nodes, "nodes", at::kInt, 2, kNodeInts);
    check_tensor(prims, "prims", at::kFloat, 2, kPrimStride);
    check_tensor(prim_ids, "prim_ids", at::kInt, 1);
    check_tensor(origins, "origins", at::kFloat, 2, 3);
    check_tensor(directions, "directions", at::kFloat, 2, 3);
    check_tensor(tmin, "tmin", at::kFloat, 1);
    check_tensor(tmax, "tmax", at::kFloat, 1);
    int64_t n = origins.size(0);
    check_rows(directions, "directions", n);
    check_rows(tmin, "tmin", n);
    check_rows(tmax, "tmax", n);
    check_rows(prim_ids, "prim_ids", prims.size(0));
    check_same_device(origins, "origins", directions, "directions");
    check_same_device(origins, "origins", tmin, "tmin");
    check_same_device(origins, "origins", tmax, "tmax");
    check_same_device(origins, "origins", nodes, "nodes");
    check_same_device(origins, "origins", prims, "prims");
    check_same_device(origins, "origins", prim_ids, "prim_ids");
    for (const at::Tensor* t : {&nodes, &prims, &prim_ids, &origins, &directions, &tmin, &tmax})
        TORCH_CHECK_VALUE(t->is_contiguous(), "BVH kernel inputs must be contiguous");
}

std::vector<at::Tensor> bvh_intersect(at::Tensor nodes, at::Tensor prims, at::Tensor prim_ids, int64_t num_triangles,
                                      at::Tensor origins, at::Tensor directions, at::Tensor tmin, at::Tensor tmax,
                                      bool any_hit, bool wide, int64_t packet) {
    check_bvh_args(nodes, prims, prim_ids, origins, directions, tmin, tmax);
    int64_t n = origins.size(0);
    auto opts = origins.options();
    at::Tensor t, prim, u, v, hit;
    if (any_hit) {
        hit = at::empty({n}, opts.dtype(at::kBool));
    } else {
        t = at::empty({n}, opts);
        prim = at::empty({n}, opts.dtype(at::kInt));
        u = at::empty({n}, opts);
        v = at::empty({n}, opts);
    }
    auto ptr = [](at::Tensor& x) { return x.defined() ? x.data_ptr() : nullptr; };
    const BVHNode4* node_ptr = reinterpret_cast<const BVHNode4*>(nodes.data_ptr<int32_t>());
    if (origins.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        bvh_intersect_cuda(node_ptr, (int32_t)nodes.size(0), prims.data_ptr<float>(), prim_ids.data_ptr<int32_t>(),
                           (int32_t)num_triangles, origins.data_ptr<float>(), directions.data_ptr<float>(),
                           tmin.data_ptr<float>(), tmax.data_ptr<float>(), n, any_hit, (float*)ptr(t),
                           (int32_t*)ptr(prim), (float*)ptr(u), (float*)ptr(v), (bool*)ptr(hit),
                           at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "origins: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        bvh_intersect_cpu(node_ptr, (int32_t)nodes.size(0), prims.data_ptr<float>(), prim_ids.data_ptr<int32_t>(),
                          (int32_t)num_triangles, origins.data_ptr<float>(), directions.data_ptr<float>(),
                          tmin.data_ptr<float>(), tmax.data_ptr<float>(), n, any_hit, (float*)ptr(t),
                          (int32_t*)ptr(prim), (float*)ptr(u), (float*)ptr(v), (bool*)ptr(hit), wide, (int)packet);
    }
    if (any_hit) return {hit};
    return {t, prim, u, v};
}

// (8-wide nodes, triangle/sphere packets) of the tree bvh_intersect(wide=True) and the CPU path tracer derive from
// nodes; empty where the 8-wide tree is not compiled in (no AVX2), and they trace the 4-wide one.
std::vector<int64_t> bvh_wide_info(at::Tensor nodes, at::Tensor prims) {
    check_tensor(nodes, "nodes", at::kInt, 2, kNodeInts);
    check_tensor(prims, "prims", at::kFloat, 2, kPrimStride);
#if RADIANT_WIDE_BVH
    nodes = nodes.to(at::kCPU).contiguous();
    prims = prims.to(at::kCPU).contiguous();
    WideBVH w = bvh_widen_cpu(reinterpret_cast<const BVHNode4*>(nodes.data_ptr<int32_t>()), (int32_t)nodes.size(0),
                              prims.data_ptr<float>(), prims.size(0), kWideLeafPrims);
    return {(int64_t)w.nodes.size(), (int64_t)w.packets.size()};
#else
    return {};
#endif
}

void register_bvh(pybind11::module_& m) {
    m.def("bvh_wide_info", &bvh_wide_info, "Sizes of the CPU's 8-wide tree (empty when not compiled in)",
          pybind11::arg("nodes"), pybind11::arg("prims"));
    m.def("bvh_build", &bvh_build, "Binned-SAH BVH over triangles and spheres (CPU)", pybind11::arg("vertices"),
          pybind11::arg("faces"), pybind11::arg("spheres"), pybind11::arg("max_leaf_size") = 0);
    m.def("bvh_intersect", &bvh_intersect, "Closest-hit or any-hit BVH traversal", pybind11::arg("nodes"),
          pybind11::arg("prims"), pybind11::arg("prim_ids"), pybind11::arg("num_triangles"), pybind11::arg("origins"),
          pybind11::arg("directions"), pybind11::arg("tmin"), pybind11::arg("tmax"), pybind11::arg("any_hit"),
          pybind11::arg("wide") = false, pybind11::arg("packet") = -1);
    m.def("bvh_packet_compiled", []() { return RADIANT_PACKET_BVH != 0; },
          "Whether bvh_intersect(wide=True, packet>=0) traces ray packets (16 rays with AVX-512, 8 with AVX2)");
}

static Registrar registrar(&register_bvh);

}  // namespace
}  // namespace radiant
