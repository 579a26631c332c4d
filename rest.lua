wrk.headers["x-api-key"] = os.getenv("KEY")
