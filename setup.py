"""Packaging for zkref, driven by settings.ini (nbdev's single source of project metadata).

nbdev_new writes this file from an online template; zkref writes it by hand so that it works offline.
"""
from configparser import ConfigParser
from pathlib import Path

import setuptools

config = ConfigParser(delimiters=["="])
config.read(Path(__file__).parent / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=["zkref", "zkref.*"]),
    include_package_data=True,
    install_requires=cfg.get("requirements", "").split(),
    extras_require={"dev": cfg.get("dev_requirements", "").split()},
    entry_points={
        "console_scripts": cfg.get("console_scripts", "").split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    zip_safe=False,
)
