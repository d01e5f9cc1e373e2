"""The browser editor (Gradio) is not built yet; this entry point says so instead of pretending.

Compose from the command line meanwhile:
    python -m composer compose --request assets/examples/cafe-morning.json \
        --images assets/library/coffee.jpg assets/library/cat.jpg --out out/
"""
import sys

if __name__ == "__main__":
    print(__doc__.strip(), file=sys.stderr)
    sys.exit(1)
