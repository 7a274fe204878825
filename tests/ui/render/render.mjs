// Renders a react-jsonschema-form export ({"schema", "uiSchema"}, JSON on stdin) to HTML on
// stdout with react-dom/server, the way a browser's first render would lay it out.
import { readFileSync } from "node:fs";
import React from "react";
import { renderToStaticMarkup } from "react-dom/server";
import Form from "@rjsf/core";
import validator from "@rjsf/validator-ajv8";

const { schema, uiSchema, formData } = JSON.parse(readFileSync(0, "utf8"));
const form = React.createElement(Form.default ?? Form, { schema, uiSchema, formData, validator });
process.stdout.write(renderToStaticMarkup(form));
