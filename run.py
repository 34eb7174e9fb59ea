"""Entry point: `flask --app run …` and WSGI servers import ``app`` from here."""
from app import create_app

app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=app.config["PORT"])
