"""`flopcast web`: the same answers as a page and a JSON API (flopcast.web.app.create_app).

Needs the optional extra ``pip install 'flopcast[web]'`` (FastAPI, uvicorn, python-multipart,
plotly); nothing here is imported by ``import flopcast`` or by the other commands.
"""
