"""The API's answers as pydantic models, one module per router: what every route returns,
field by field, so the OpenAPI document says it and a response that drifts from it is caught."""
