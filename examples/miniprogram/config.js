// Where the API is: `make dev` serves it on 127.0.0.1:3000 (turn off "verify domain names" in
// DevTools for local use); after `sam deploy`, the stack's ApiUrl output.
module.exports = {
  baseURL: 'http://127.0.0.1:3000'
}
