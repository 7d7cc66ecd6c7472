'use strict'
// The client suites on a simulated wx object (see platforms.js), against the local stack.
// account.js (DELETE /me) and admin.js (wxadmin) join when those routes land.
require('./suite.js')('wx')
require('./ended.js')('wx')
require('./phone.js')('wx')
