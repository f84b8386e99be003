"""Small documents for tests, written on the fly (Chinese, English, mixed, every bad input)."""

from __future__ import annotations

from pathlib import Path

from pdfgen import make_pdf, make_scanned_pdf

ZH_POLICY_P1 = ("本手册介绍公司的差旅报销制度。员工出差前需要在系统中提交出差申请，并由部门经理审批。"
                "出差期间的交通费、住宿费和餐饮补贴按照标准报销。")
ZH_POLICY_P2 = ("报销单需要附上发票原件。财务部门在收到完整材料后的五个工作日内完成付款。"
                "超过标准的住宿费用需要副总经理特别批准。")
ZH_POLICY_P3 = "年假天数根据工龄计算：工作满一年不满十年的员工享有五天年假，满十年的员工享有十天年假。"

EN_GUIDE_MD = """# Deployment guide

Intro paragraph about running the service.

## Requirements

The server needs Python 3.11 and 8 GB of memory. GPUs are optional.

### Operating systems

Linux and macOS are supported; Windows works through WSL2.

## Configuration

Set the RAGKB_DATA_DIR variable to choose where knowledge bases are stored.

```python
# this comment is not a header
print("hello")
```

## Troubleshooting

If the embedding model cannot be loaded, check the RAGKB_EMBEDDING_MODEL path.
"""

ZH_GUIDE_MD = """# 安装

本节说明如何安装系统。

## 依赖

系统依赖 Python 3.11 和 SQLite 数据库。向量检索使用 Chroma 数据库。

## 配置

配置文件放在数据目录中，修改后需要重启服务。
"""

ZH_TEXT = ("量子计算机利用量子叠加和纠缠进行计算。与经典计算机相比，量子计算机在因式分解和量子模拟等问题上"
           "具有潜在的指数级加速。目前超导量子比特和离子阱是两种主流的技术路线。")
BIG5_TEXT = "臺灣的高速鐵路連接臺北與高雄，全長三百四十五公里。列車最高營運速度為每小時三百公里，大幅縮短了南北往返的時間。"


def zh_pdf(path: Path) -> Path:
    return make_pdf(path, [
        [("h", "第一章 差旅报销"), ("p", ZH_POLICY_P1)],
        [("h", "1.1 报销流程"), ("p", ZH_POLICY_P2)],
        [("h", "第二章 休假制度"), ("p", ZH_POLICY_P3)],
    ], cjk=True, title="员工手册", outline=[
        ("第一章 差旅报销", 1, 0), ("1.1 报销流程", 2, 1), ("第二章 休假制度", 3, 0)])


def en_pdf(path: Path, extra: str = "") -> Path:
    return make_pdf(path, [
        [("h", "1 Introduction"), ("p", "The Falcon telescope observes distant galaxies in infrared light. " * 3)],
        [("h", "2 Calibration"), ("p", "Calibration of the mirror uses a laser interferometer every night. " * 3 + extra)],
    ], outline=[("1 Introduction", 1, 0), ("2 Calibration", 2, 0)])


def garbled_pdf(path: Path) -> Path:
    moj = (ZH_POLICY_P1 + ZH_POLICY_P2).encode("gbk").decode("latin-1")
    return make_pdf(path, [[("p", moj)], [("p", moj)]])


def scanned_pdf(path: Path) -> Path:
    return make_scanned_pdf(path)


def encrypted_pdf(path: Path) -> Path:
    return make_pdf(path, [[("p", "Confidential salary table for 2026.")]], encrypt="s3cret")


def write_corpus(folder: Path) -> dict[str, Path]:
    """A folder with one file of each kind a user typically has."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "zh_pdf": zh_pdf(folder / "员工手册.pdf"),
        "en_pdf": en_pdf(folder / "telescope.pdf"),
        "en_md": folder / "deploy.md",
        "zh_md": folder / "安装指南.md",
        "gbk_txt": folder / "量子_gbk.txt",
        "utf16_txt": folder / "notes_utf16.txt",
    }
    files["en_md"].write_text(EN_GUIDE_MD, encoding="utf-8")
    files["zh_md"].write_text(ZH_GUIDE_MD, encoding="utf-8")
    files["gbk_txt"].write_bytes(ZH_TEXT.encode("gbk"))
    files["utf16_txt"].write_text("Meeting notes: the budget review moves to Thursday. 预算评审改到周四。",
                                  encoding="utf-16")
    return files


def zh_docx(path: Path, image: bool = True) -> Path:
    """A Chinese Word file with Word heading styles, a table and an image (python-docx)."""
    import io

    from docx import Document
    from docx.shared import Inches

    d = Document()
    d.add_heading("员工手册", level=1)
    d.add_heading("差旅报销", level=2)
    d.add_paragraph("报销单需要附上发票原件。财务部门在收到完整材料后的五个工作日内完成付款。")
    d.add_heading("住宿标准", level=3)
    table = d.add_table(rows=3, cols=2)
    for r, (city, cap) in enumerate([("城市", "每晚上限"), ("北京", "六百元"), ("成都", "四百元")]):
        table.cell(r, 0).text, table.cell(r, 1).text = city, cap
    d.add_heading("休假制度", level=2)
    d.add_paragraph("员工工作满一年后享有五天年假。")
    if image:
        from PIL import Image

        png = io.BytesIO()
        Image.new("RGB", (20, 20), (200, 30, 30)).save(png, format="PNG")
        png.seek(0)
        d.add_picture(png, width=Inches(0.3))
    d.save(str(path))
    return path


EN_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Operations guide</title>
<style>body { color: red }</style><script>window.__x = 1; document.write("injected")</script></head>
<body><nav><a href="/">Home</a></nav>
<h1>Operations guide</h1>
<h2>Backups</h2><p>Backups run every night at <b>02:00</b> and are kept for 14 days.</p>
<h2>Ports</h2><p>The web server listens on port 8443. <img src="diagram.png" alt="network diagram"></p>
<table><tr><th>Service</th><th>Port</th></tr><tr><td>metrics</td><td>9100</td></tr></table>
<p onclick="alert(1)">Markup such as &lt;script&gt; stays text.</p>
</body></html>"""


def image_only_pdf(src: Path, dst: Path, dpi: int = 150, pages: list[int] | None = None) -> Path:
    """`src`'s pages rendered to images and rebuilt as a PDF without a text layer: what a scanner makes."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    try:
        images = [doc[i].render(scale=dpi / 72).to_pil().convert("RGB") for i in (pages or range(len(doc)))]
    finally:
        doc.close()
    images[0].save(str(dst), "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return dst
