"""The reference material of a bake: the one torch-evaluated (layered) BSDF of a material XML, and a preview scene
(a sphere on a plane under an environment) that renders any scene BSDF object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bsdfs.torch_bsdf import find_torch_material, torch_bsdf_plugin
from ..errors import UserError
from ..scene import load_scene
from ..scene.loader import load_string
from ..scene.types import BSDF

PREVIEW_SCENE = """<scene version="3.0.0">
    <integrator type="path"><integer name="max_depth" value="{max_depth}"/></integrator>
    <sensor type="perspective">
        <float name="fov" value="32"/>
        <transform name="to_world"><lookat origin="0, 2.2, -4.6" target="0, 0.55, 0" up="0, 1, 0"/></transform>
        <sampler type="independent"><integer name="sample_count" value="16"/></sampler>
        <film type="hdrfilm"><integer name="width" value="{width}"/><integer name="height" value="{height}"/>
            <rfilter type="box"/></film>
    </sensor>
    <emitter type="constant"><rgb name="radiance" value="0.6, 0.65, 0.7"/></emitter>
    <emitter type="directional"><vector name="direction" value="0.5, -1, 0.7"/>
        <rgb name="irradiance" value="3, 2.9, 2.7"/></emitter>
    <shape type="sphere"><point name="center" value="0, 1, 0"/><float name="radius" value="1"/>
        <bsdf type="diffuse" id="mat"/></shape>
    <shape type="rectangle">
        <transform name="to_world"><rotate x="1" angle="-90"/><scale value="2.2"/></transform>
        <ref id="mat"/></shape>
</scene>"""


@dataclass
class ReferenceMaterial:
    bsdf: BSDF          # the scene object (for preview renders)
    torch_bsdf: object  # its TorchBSDF
    source: str         # "file.xml#id" or "file.xml"


def source_resolution(material) -> int:
    """Resolution of the finest latent level: the largest source texture of the material (64 without one)."""
    images = [t.image for t in getattr(material, "_textures", []) if getattr(t, "image", None) is not None]
    return max((max(i.shape[:2]) for i in images), default=64)


def load_reference(path: Path, material_id: str | None = None, device="cpu") -> ReferenceMaterial:
    """The torch-evaluated material of a scene XML, or of a file whose root element is one <bsdf>."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such material XML file")
    text = path.read_text(errors="replace")
    if "<scene" not in text:
        scene = load_string(f'<scene version="3.0.0">{text}</scene>', base_dir=path.parent, name=str(path))
    else:
        scene = load_scene(path)
    try:
        name, bsdf = find_torch_material(scene, path, material_id)
    except UserError as e:
        if "found 0" in str(e):
            raise UserError(f"{path}: no material to bake (expected a <bsdf type=\"layered\">, coatedconductor or "
                            "coateddiffuse)") from None
        raise
    if bsdf.type == "neural":
        raise UserError(f"{path}: material '{name}' is already neural; bake a layered material")
    torch_bsdf = torch_bsdf_plugin(bsdf.type).factory(bsdf, f"{path}: bsdf '{name}'").to(device)
    if not hasattr(torch_bsdf, "parameter_textures"):
        raise UserError(f"{path}: material '{name}' ({bsdf.type}) has no parameter textures to encode")
    return ReferenceMaterial(bsdf, torch_bsdf, f"{path.name}#{name}")


def preview_scene(bsdf: BSDF, width: int = 160, height: int = 120, max_depth: int = 4):
    """The preview scene with `bsdf` on the sphere and the plane."""
    scene = load_string(PREVIEW_SCENE.format(width=width, height=height, max_depth=max_depth), name="preview")
    for s in scene.shapes:
        s.bsdf = bsdf
    return scene
